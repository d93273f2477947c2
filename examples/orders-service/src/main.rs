//! The orders service: under construction.

fn main() {}
