use tl_core::ThreadLocal;
use tl_macros::thread_local_scoped;

static KEY: ThreadLocal<u64> = ThreadLocal::new();

trait Handler {
    #[thread_local_scoped(KEY)]
    fn handle(&self);
}

impl Handler for () {
    fn handle(&self) {
        KEY.set(1);
    }
}

fn main() {
    ().handle();
}
