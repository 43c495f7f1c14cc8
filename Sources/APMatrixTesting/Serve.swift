// `apmatrix serve` as a process, as users run it: started, waited for until
// its `ready` line, its API address and CLI, and cleaned up whatever happened.

import Foundation
import Glibc

/// Cleans up after a serve test whatever happened: kills the daemon if it is
/// still running, removes the token file a killed daemon leaves, lazily
/// unmounts anything left at `dir`, removes `dir`.
public func cleanupServe(_ p: Spawned?, _ dir: String) {
    if let p, p.status == nil { p.signal(SIGKILL); p.reap(timeout: 5) }
    if let p { removeTokenFile(of: p) }
    while isApmatrixMount(dir) { if umount2(dir, Int32(MNT_DETACH)) != 0 { break } }
    rmdir(dir)
}

/// Removes the token file of a serve killed with SIGKILL (a daemon that
/// exits removes its own) from the default run directory.
public func removeTokenFile(of p: Spawned) {
    guard p.status == 128 + SIGKILL, let address = readyAddress(p), address.hasPrefix("http://") else { return }
    unlink("/run/apmatrix/\(address.dropFirst("http://".count)).token")
}

/// The address of serve's `ready ADDRESS` line, if it printed one.
public func readyAddress(_ p: Spawned) -> String? {
    guard let ready = p.stdoutText.split(separator: "\n").first, ready.hasPrefix("ready ") else { return nil }
    return String(ready.dropFirst("ready ".count))
}

/// Starts `apmatrix serve --mount dir --listen 127.0.0.1:0` (after `prefix`,
/// a command that execs it; with `--host`, `--profile`, `arguments` and the
/// variables of `environment` added) and waits (30 s at most) for `ready`.
/// Port 0: the tests never collide with a daemon on the default 7807.
public func startServe(_ dir: String, host: String? = nil, profile: String? = nil, prefix: [String] = [],
                       arguments: [String] = [], environment: [String: String] = [:]) throws -> Spawned {
    var argv = prefix + [try apmatrixExecutable(), "serve", "--mount", dir, "--listen", "127.0.0.1:0"]
    if let host { argv += ["--host", host] }
    if let profile { argv += ["--profile", profile] }
    let p = try Spawned(argv + arguments, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 })
    _ = p.waitForStdoutLine(timeout: 30) { $0 == "ready" || $0.hasPrefix("ready ") }
    return p
}

/// Starts `serve --state` on `dir`; the `ready` line's address.
public func startStateServe(_ dir: String, state: String, extra: [String] = []) throws -> (Spawned, String?) {
    let p = try startServe(dir, arguments: ["--state", state] + extra)
    return (p, readyAddress(p))
}

/// A running `apmatrix serve` with its API address, for CLI commands. Its
/// run directory (its token, `apmatrix exec`'s directories) is under
/// `base`, never /run; its CLI commands look there.
public final class ServeProcess {
    public let base: String
    public let sys: String
    public let process: Spawned
    public let server: String

    /// `isolated`: in a mount namespace of its own, so that no tree it
    /// mounts where a request says is seen outside it.
    public init(host: String? = nil, profile: String? = nil, isolated: Bool = false, arguments: [String] = []) throws {
        base = try makeTempDir()
        sys = base + "/sys"
        process = try startServe(sys, host: host, profile: profile,
                                 prefix: isolated ? ["/usr/bin/unshare", "--mount", "--propagation", "private"] : [],
                                 arguments: arguments, environment: ["APMATRIX_RUN_DIR": base + "/run"])
        guard let address = readyAddress(process), address.hasPrefix("http") else {
            cleanupServe(process, sys)
            throw TestFailure("serve is not ready: \(process.stdoutText) \(process.stderrText)")
        }
        server = address
    }

    /// The daemon's run directory: its token file, its private root.
    public var runDirectory: String { base + "/run" }

    /// The daemon's write token file (`TokenFile`).
    public var tokenFile: String { runDirectory + "/" + server.dropFirst("http://".count) + ".token" }

    /// `apmatrix ARGS` against this daemon.
    public func cli(_ args: String) throws -> ShellResult {
        sh("APMATRIX_SERVER=\(q(server)) APMATRIX_RUN_DIR=\(q(runDirectory)) \(q(try apmatrixExecutable())) \(args)", timeout: 30)
    }

    /// Stops serve (SIGTERM) and removes every directory; lazily unmounts leftovers.
    public func finish(guestDirs: [String] = []) {
        if process.status == nil { process.signal(SIGTERM); process.reap(timeout: 15) }
        for d in guestDirs { cleanupServe(nil, d) }
        cleanupServe(process, sys)
        _ = sh("rm -rf \(q(base))")
    }
}
