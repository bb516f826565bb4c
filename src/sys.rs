//! syscall wrappers
