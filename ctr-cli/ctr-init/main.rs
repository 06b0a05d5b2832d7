//! `ctr-init`: the container's first process, and `ctr exec`'s joiner, as
//! the helper executes it (`PREFIX/libexec/ctr/ctr-init`). A binary of its
//! own so that every container start and exec loads only init's code
//! (`ctr_cli::init`), not the whole command line: no argument parser, no
//! registry client, no libseccomp (init loads a compiled program with
//! seccomp(2)). It reads its task from fd 3 and takes no arguments.
//!
//! The C `main` is ours (`no_main`), so Rust's start-up code does not run:
//! it would read /proc/self/maps for the main thread's stack guard, set up
//! a signal stack, and ignore SIGPIPE, a disposition that the container's
//! command would inherit through execve. Init keeps the helper's defaults.

#![no_main]

#[no_mangle]
pub extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    ctr_cli::init::main()
}
