use tl_core::ThreadLocal;
use tl_macros::thread_local_scoped;

static KEY: ThreadLocal<u64> = ThreadLocal::new();

#[thread_local_scoped(key())]
fn call() {}

#[thread_local_scoped("KEY")]
fn literal() {}

#[thread_local_scoped(&KEY)]
fn reference() {}

#[thread_local_scoped(KEY,, KEY2)]
fn empty() {}

#[thread_local_scoped(Vec::<u8>::new)]
fn generic_path() {}

fn key() -> &'static ThreadLocal<u64> {
    &KEY
}

fn main() {
    call();
    literal();
    reference();
    empty();
    generic_path();
}
