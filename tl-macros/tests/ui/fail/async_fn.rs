use tl_core::ThreadLocal;
use tl_macros::thread_local_scoped;

static KEY: ThreadLocal<u64> = ThreadLocal::new();

#[thread_local_scoped(KEY)]
async fn handler() -> u64 {
    KEY.set(1);
    1
}

fn main() {
    let _future = handler();
}
