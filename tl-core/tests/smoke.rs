use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tl_core::ThreadLocal;

static A: ThreadLocal<u64> = ThreadLocal::new().named("A");

struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn smoke() {
    assert_eq!(A.get(), None);
    assert_eq!(A.set(5), None);
    assert_eq!(A.get(), Some(5));
    assert_eq!(A.set(6), Some(5));
    assert_eq!(A.remove(), Some(6));
    assert_eq!(A.get(), None);
    let drops = Arc::new(AtomicUsize::new(0));
    let tl = ThreadLocal::new();
    tl.set(Counted(drops.clone()));
    let t = {
        let d = drops.clone();
        let tl = Arc::new(tl);
        let tl2 = tl.clone();
        let h = std::thread::spawn(move || {
            tl2.set(Counted(d));
            drop(tl2);
        });
        h.join().unwrap();
        tl
    };
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(t);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    for s in tl_core::registry::snapshot_all() {
        println!("{:?}", s);
    }
}
