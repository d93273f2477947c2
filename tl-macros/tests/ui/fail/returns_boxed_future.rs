use std::future::Future;
use std::pin::Pin;

use tl_core::ThreadLocal;
use tl_macros::thread_local_scoped;

static KEY: ThreadLocal<u64> = ThreadLocal::new();

#[thread_local_scoped(KEY)]
fn handler() -> Pin<Box<dyn Future<Output = u64> + Send>> {
    Box::pin(async {
        KEY.set(1);
        1
    })
}

fn main() {
    let _future = handler();
}
