// A public service may keep thread-locals of private types: the derive's
// guards must not put them in a public interface.
#![deny(private_interfaces, private_bounds)]

pub mod orders {
    use std::sync::Arc;

    use tl_core::ThreadLocal;
    use tl_macros::{ThreadLocalScoped, thread_local_scoped};

    struct Conn(u32);
    pub(crate) struct Token(&'static str);

    #[derive(ThreadLocalScoped)]
    pub struct OrderService {
        #[thread_local_scoped]
        conn: ThreadLocal<Conn>,
        #[thread_local_scoped]
        token: Arc<ThreadLocal<Token>>,
    }

    impl OrderService {
        pub fn new() -> Self {
            Self {
                conn: ThreadLocal::new(),
                token: Arc::new(ThreadLocal::new()),
            }
        }

        #[thread_local_scoped]
        pub fn place_order(self: Arc<Self>) -> u32 {
            self.conn.set(Conn(7));
            self.token.set(Token("t"));
            self.conn.with(|c| c.map_or(0, |c| c.0)) + self.token.with(|t| t.map_or(0, |t| t.0.len() as u32))
        }

        pub fn bound(&self) -> bool {
            self.conn.is_set() || self.token.is_set()
        }
    }
}

fn main() {
    let service = std::sync::Arc::new(orders::OrderService::new());
    assert_eq!(std::sync::Arc::clone(&service).place_order(), 8);
    assert!(!service.bound());
}
