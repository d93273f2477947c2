// The forms from the issue, as users write them.
use tl_core::ThreadLocal;
use tl_macros::{ThreadLocalScoped, thread_local_scoped};

#[derive(Clone, Copy, Debug, PartialEq)]
struct UserId(u64);
struct PooledConnection;
struct Pool;
struct Order;
#[derive(Debug)]
struct Receipt;
#[derive(Debug)]
struct Error;

static CURRENT_USER: ThreadLocal<UserId> = ThreadLocal::new();

#[derive(ThreadLocalScoped)]
struct OrderService {
    #[thread_local_scoped]
    current_user: ThreadLocal<UserId>,
    #[thread_local_scoped]
    conn: ThreadLocal<PooledConnection>,
    pool: Pool,
}

impl OrderService {
    #[thread_local_scoped(CURRENT_USER, self.conn)]
    fn place_order(&self, req: Order) -> Result<Receipt, Error> {
        let _ = (&self.pool, req);
        CURRENT_USER.set(UserId(1));
        self.conn.set(PooledConnection);
        Ok(Receipt)
    }

    #[thread_local_scoped]
    fn cancel_order(&self, req: Order) -> Result<Receipt, Error> {
        let _ = req;
        self.current_user.set(UserId(2));
        self.conn.set(PooledConnection);
        Err(Error)
    }
}

fn main() {
    let service = OrderService {
        current_user: ThreadLocal::new(),
        conn: ThreadLocal::new(),
        pool: Pool,
    };
    service.place_order(Order).unwrap();
    service.cancel_order(Order).unwrap_err();
    assert!(!CURRENT_USER.is_set());
    assert!(!service.current_user.is_set());
    assert!(!service.conn.is_set());
}
