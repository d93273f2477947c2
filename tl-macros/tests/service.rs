//! `#[derive(ThreadLocalScoped)]` services: handlers without arguments clean
//! up every scoped field, whatever the receiver, and leak reports name the
//! fields.

use std::rc::Rc;
use std::sync::Arc;

use tl_core::ThreadLocal;
use tl_core::{ThreadLocalScoped, thread_local_scoped};

#[derive(Clone, Debug, PartialEq)]
struct UserId(u32);

#[derive(ThreadLocalScoped)]
struct OrderService {
    #[thread_local_scoped]
    current_user: ThreadLocal<UserId>,
    #[thread_local_scoped]
    conn: Box<ThreadLocal<String>>,
    not_scoped: ThreadLocal<u8>,
    orders: Vec<u32>,
}

static AUDIT: ThreadLocal<&'static str> = ThreadLocal::new();

impl OrderService {
    fn new() -> Self {
        Self {
            current_user: ThreadLocal::new(),
            conn: Box::new(ThreadLocal::new()),
            not_scoped: ThreadLocal::new(),
            orders: Vec::new(),
        }
    }

    fn bind_all(&self, user: u32) {
        self.current_user.set(UserId(user));
        self.conn.set(format!("conn for {user}"));
    }

    fn all_clean(&self) -> bool {
        !self.current_user.is_set() && !self.conn.is_set()
    }

    #[thread_local_scoped]
    fn place_order(&self, user: u32) -> Result<u32, String> {
        self.bind_all(user);
        if user == 0 {
            return Err("anonymous".to_owned());
        }
        Ok(user * 10)
    }

    #[thread_local_scoped]
    fn record(&mut self, user: u32) -> usize {
        self.bind_all(user);
        self.orders.push(user);
        self.orders.len()
    }

    #[thread_local_scoped]
    fn into_orders(self, user: u32) -> (Vec<u32>, bool) {
        self.bind_all(user);
        let clean_before_return = self.all_clean();
        (self.orders, clean_before_return)
    }

    #[thread_local_scoped]
    fn shared(self: Arc<Self>, user: u32) -> Arc<Self> {
        self.bind_all(user);
        self
    }

    #[thread_local_scoped(self, AUDIT, task = "orders::audited")]
    fn audited(&self, user: u32) {
        self.bind_all(user);
        AUDIT.set("audited");
    }

    #[thread_local_scoped(self.conn)]
    fn only_conn(&self, user: u32) {
        self.bind_all(user);
    }
}

#[test]
fn no_argument_form_cleans_every_scoped_field() {
    let service = OrderService::new();
    assert_eq!(service.place_order(3), Ok(30));
    assert!(service.all_clean());
    assert_eq!(service.place_order(0), Err("anonymous".to_owned()));
    assert!(service.all_clean());
}

#[test]
fn unmarked_fields_are_left_alone() {
    let service = OrderService::new();
    service.not_scoped.set(1);
    service.place_order(1).unwrap();
    assert_eq!(service.not_scoped.get(), Some(1));
}

#[test]
fn mut_self_and_by_value_and_arc_receivers() {
    let mut service = OrderService::new();
    assert_eq!(service.record(1), 1);
    assert_eq!(service.record(2), 2);
    assert!(service.all_clean());

    let shared = Arc::new(OrderService::new()).shared(5);
    assert!(shared.all_clean());

    // By value: the body moves out of `self`; the guards were taken before
    // and still run (before the rest of `self`, and its keys, are dropped).
    let (orders, clean_before_return) = OrderService::new().into_orders(4);
    assert!(orders.is_empty());
    assert!(!clean_before_return);
}

#[test]
fn self_argument_mixes_with_statics() {
    let service = OrderService::new();
    service.audited(8);
    assert!(service.all_clean());
    assert!(!AUDIT.is_set());
}

#[test]
fn a_listed_field_is_the_only_one_cleaned() {
    let service = OrderService::new();
    service.only_conn(2);
    assert!(!service.conn.is_set());
    assert_eq!(service.current_user.remove(), Some(UserId(2)));
}

#[test]
fn fields_are_named_after_the_service_and_declared_at_the_field() {
    let service = OrderService::new();
    service.place_order(1).unwrap();
    let user = service.current_user.info();
    assert_eq!(user.name, Some("OrderService.current_user"));
    assert_eq!(user.declared_at.file(), file!());
    assert_eq!(user.declared_at.line(), 17);
    assert_eq!(user.declared_at.column(), 5);
    assert_eq!(service.conn.info().name, Some("OrderService.conn"));
    assert_eq!(service.conn.info().declared_at.line(), 19);
    // Unmarked fields keep their own declaration site and no name.
    assert_eq!(service.not_scoped.info().name, None);
}

#[test]
fn a_name_given_by_the_user_wins() {
    let service = OrderService {
        current_user: ThreadLocal::new().named("custom"),
        ..OrderService::new()
    };
    service.place_order(1).unwrap();
    assert_eq!(service.current_user.info().name, Some("custom"));
}

// === other shapes ===

#[derive(ThreadLocalScoped)]
struct Tuple(#[thread_local_scoped] Rc<ThreadLocal<u8>>, u8);

impl Tuple {
    #[thread_local_scoped]
    fn handle(&self) {
        self.0.set(self.1);
    }
}

#[test]
fn tuple_structs_and_rc_fields() {
    let tuple = Tuple(Rc::new(ThreadLocal::new()), 3);
    tuple.handle();
    assert!(!tuple.0.is_set());
    assert_eq!(tuple.0.info().name, Some("Tuple.0"));
}

#[derive(ThreadLocalScoped)]
struct Generic<'a, T: Clone + 'static, const N: usize>
where
    T: Send,
{
    #[thread_local_scoped]
    value: tl_core::ThreadLocal<T>,
    #[thread_local_scoped]
    array: Arc<ThreadLocal<[T; N]>>,
    borrowed: &'a [T; N],
}

impl<T: Clone + Send + 'static, const N: usize> Generic<'_, T, N> {
    #[thread_local_scoped]
    fn handle(&self) -> Option<T> {
        self.array.set(self.borrowed.clone());
        self.value.set(self.borrowed[0].clone());
        self.value.get()
    }
}

#[test]
fn generic_services() {
    let data = [1u64, 2, 3];
    let service = Generic {
        value: ThreadLocal::new(),
        array: Arc::new(ThreadLocal::new()),
        borrowed: &data,
    };
    assert_eq!(service.handle(), Some(1));
    assert!(!service.value.is_set());
    assert!(!service.array.is_set());
}
