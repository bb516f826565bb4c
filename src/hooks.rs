//! OCI hooks
