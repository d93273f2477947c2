//! Every visibility a static may have.
use tl_core::thread_local;

mod outer {
    pub mod inner {
        use tl_core::thread_local;

        thread_local! {
            pub static PUBLIC: u8 = 1;
            pub(crate) static CRATE: u8 = 2;
            pub(super) static SUPER: u8 = const { 3 };
            pub(in crate::outer) static IN_PATH: u8 = 4;
            pub(self) static SELF: u8 = 5;
            static PRIVATE: u8 = 6;
        }

        pub fn private_sum() -> u8 {
            SELF.with(|a| PRIVATE.with(|b| a + b))
        }
    }

    pub fn sum() -> u8 {
        inner::SUPER.with(|a| inner::IN_PATH.with(|b| a + b))
    }
}

thread_local!(pub static ROOT: u8 = 0);

fn main() {
    let sum = outer::inner::PUBLIC.with(|a| outer::inner::CRATE.with(|b| a + b));
    assert_eq!(sum + outer::sum() + outer::inner::private_sum() + ROOT.with(|r| *r), 21);
}
