//! libFuzzer target: arbitrary bytes on the helper channel (see `ctr_fuzz::frame`).
#![no_main]

#[global_allocator]
static ALLOC: ctr_fuzz::alloc::Counting = ctr_fuzz::alloc::Counting;

libfuzzer_sys::fuzz_target!(init: ctr_fuzz::seeds::write_if_asked(ctr_fuzz::Target::Frame), |data: &[u8]| {
    ctr_fuzz::frame(data)
});
