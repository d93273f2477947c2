use std::future::Future;

use tl_core::ThreadLocal;
use tl_macros::thread_local_scoped;

static KEY: ThreadLocal<u64> = ThreadLocal::new();

#[thread_local_scoped(KEY)]
fn handler() -> impl Future<Output = u64> {
    async {
        KEY.set(1);
        1
    }
}

fn main() {
    let _future = handler();
}
