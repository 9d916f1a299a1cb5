//! A quiet start on Linux without a desktop session: wgpu's Vulkan backend always enables the
//! window-system extensions, and loading the Wayland one makes libwayland-client print
//! `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` when that variable is
//! missing, as on servers and in containers. A compute-only program has no windows, so when the
//! variable is missing it is pointed at a private directory (`$TMPDIR/gpurevolve-runtime`,
//! mode 0700), for this process only, before the GPU is opened. When it is set, nothing
//! changes, and no other message is hidden.

/// Sets `XDG_RUNTIME_DIR` for this process when it is missing. Call first thing in `main`,
/// before any thread starts.
pub fn set_if_missing() {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
            return;
        }
        let dir = std::env::temp_dir().join("gpurevolve-runtime");
        // The XDG specification asks for a directory only its owner can use; one that another
        // user owns cannot be made so, and is left alone (the messages then stay).
        let private = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)));
        if private.is_ok() {
            // SAFETY: called at the start of `main`, before any other thread exists, so
            // nothing reads the environment concurrently.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        }
    }
}
