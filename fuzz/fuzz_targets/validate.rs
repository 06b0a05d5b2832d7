//! libFuzzer target: decoded requests through ctr-core's validation (see `ctr_fuzz::validate`).
#![no_main]

#[global_allocator]
static ALLOC: ctr_fuzz::alloc::Counting = ctr_fuzz::alloc::Counting;

libfuzzer_sys::fuzz_target!(init: ctr_fuzz::seeds::write_if_asked(ctr_fuzz::Target::Validate), |data: &[u8]| {
    ctr_fuzz::validate(data)
});
