//! Build-time support for cyview (work in progress).
