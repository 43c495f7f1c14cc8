import Glibc

/// Where a daemon keeps what lives as long as it runs: the write tokens of
/// its API (`TokenFile`) and the private roots of hosts without a state file
/// (`PrivateRoot`). Root's daemons use `/run/apmatrix`, another user's
/// `$XDG_RUNTIME_DIR/apmatrix` (`/tmp/apmatrix-UID` without it), so every
/// client of the same user finds them; `$APMATRIX_RUN_DIR` overrides both
/// (several test daemons side by side).
public enum RunDirectory {
    public static func path(uid: uid_t = geteuid()) -> String {
        if let dir = getenv("APMATRIX_RUN_DIR").map({ String(cString: $0) }), dir.hasPrefix("/") { return dir }
        if uid == 0 { return "/run/apmatrix" }
        if let runtime = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), runtime.hasPrefix("/") {
            return runtime + "/apmatrix"
        }
        return "/tmp/apmatrix-\(uid)"
    }
}
