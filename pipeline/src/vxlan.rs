//! VXLAN (RFC 7348) wire format: see the helper's work.
