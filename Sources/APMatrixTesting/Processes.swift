// Subprocesses: `sh` runs `/bin/bash -c` under `timeout` and returns status,
// stdout, stderr; `Spawned` runs a long-lived one (`apmatrix serve`, a
// Python client) with pipes; and where the built `apmatrix` and the
// project's Python are.

import Foundation
import Glibc

public struct ShellResult: CustomStringConvertible {
    public var status: Int32        // exit status; 128+signal when killed; 124 when `timeout` fired
    public var stdout: String
    public var stderr: String
    public var timedOut: Bool { status == 124 || status == 137 }
    public var description: String { "status \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

/// Decodes a waitpid status (the W* macros are not imported into Swift).
public func exitCode(_ status: Int32) -> Int32 {
    let sig = status & 0x7f
    return sig == 0 ? (status >> 8) & 0xff : 128 + sig
}

public func makePipe() -> (read: Int32, write: Int32) {
    var fds: [Int32] = [0, 0]
    precondition(pipe(&fds) == 0, "pipe failed")
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return (fds[0], fds[1])
}

/// A child process with stdout and stderr on pipes, and on stdin `input`
/// (then end of file) or /dev/null.
public final class Spawned {
    public let pid: pid_t
    private var outFD: Int32
    private var errFD: Int32
    public private(set) var stdout: [UInt8] = []
    public private(set) var stderr: [UInt8] = []
    public private(set) var status: Int32?

    public init(_ argv: [String], environment: [String: String]? = nil, input: String? = nil) throws {
        let out = makePipe(), err = makePipe(), inPipe = input.map { _ in makePipe() }
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        if let inPipe {
            posix_spawn_file_actions_adddup2(&fa, inPipe.read, 0)
        } else {
            posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&fa, out.write, 1)
        posix_spawn_file_actions_adddup2(&fa, err.write, 2)
        var env = environment ?? ProcessInfo.processInfo.environment
        if env["PATH"] == nil { env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }
        let cargv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cenv: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { cargv.forEach { free($0) }; cenv.forEach { free($0) } }
        var p: pid_t = 0
        let rc = posix_spawn(&p, argv[0], &fa, nil, cargv, cenv)
        close(out.write)
        close(err.write)
        if let inPipe, let input {
            close(inPipe.read)
            // Small inputs (a few commands): the pipe's buffer holds them, so this never blocks.
            if rc == 0 { _ = Array(input.utf8).withUnsafeBytes { write(inPipe.write, $0.baseAddress, $0.count) } }
            close(inPipe.write)
        }
        guard rc == 0 else {
            close(out.read); close(err.read)
            throw TestFailure("posix_spawn \(argv[0]): \(errnoText(rc))")
        }
        pid = p
        outFD = out.read
        errFD = err.read
        _ = fcntl(outFD, F_SETFL, fcntl(outFD, F_GETFL) | O_NONBLOCK)
        _ = fcntl(errFD, F_SETFL, fcntl(errFD, F_GETFL) | O_NONBLOCK)
    }

    deinit {
        if status == nil { kill(pid, SIGKILL); _ = reap(timeout: 5) }
        if outFD >= 0 { close(outFD) }
        if errFD >= 0 { close(errFD) }
    }

    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }

    /// Reads what is available on both pipes, waiting up to `ms`.
    private func pump(ms: Int32) {
        var fds: [pollfd] = []
        if outFD >= 0 { fds.append(pollfd(fd: outFD, events: Int16(POLLIN), revents: 0)) }
        if errFD >= 0 { fds.append(pollfd(fd: errFD, events: Int16(POLLIN), revents: 0)) }
        guard !fds.isEmpty else { usleep(UInt32(ms) * 1000); return }
        guard poll(&fds, nfds_t(fds.count), ms) > 0 else { return }
        for f in fds where f.revents != 0 { drain(f.fd) }
    }

    private func drain(_ fd: Int32) {
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                if fd == outFD { stdout.append(contentsOf: buf[0..<n]) } else { stderr.append(contentsOf: buf[0..<n]) }
                continue
            }
            if n == 0 {   // EOF
                close(fd)
                if fd == outFD { outFD = -1 } else { errFD = -1 }
            }
            return   // EAGAIN or EOF
        }
    }

    private func checkExit() -> Bool {
        if status != nil { return true }
        var st: Int32 = 0
        let r = waitpid(pid, &st, WNOHANG)
        if r == pid { status = exitCode(st); return true }
        return false
    }

    /// Waits until stdout holds a complete line satisfying `pred`, the process
    /// exits, or the deadline passes.
    public func waitForStdoutLine(timeout: Double, _ pred: (String) -> Bool) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            pump(ms: 50)
            let lines = stdoutText.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            if let l = lines.first(where: { pred(String($0)) }) { return String(l) }
            if checkExit() { pump(ms: 0); return nil }
        }
        return nil
    }

    /// Waits for the exit (reading the pipes meanwhile); nil on timeout.
    @discardableResult
    public func reap(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            pump(ms: 20)
            if checkExit() {
                // drain what is left (a grandchild may hold the pipe: do not wait for EOF)
                for fd in [outFD, errFD] where fd >= 0 { drain(fd) }
                return status
            }
        }
        return nil
    }

    public func signal(_ sig: Int32) { if status == nil { kill(pid, sig) } }
}

/// Runs `argv` to its end with `input` on its stdin; killed (SIGKILL, status
/// 137) if it still runs after `timeout` seconds.
public func run(_ argv: [String], input: String? = nil, environment: [String: String] = [:], timeout: Double = 30) -> ShellResult {
    let p: Spawned
    do {
        p = try Spawned(argv, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 }, input: input)
    } catch {
        return ShellResult(status: -1, stdout: "", stderr: "\(error)")
    }
    let status = p.reap(timeout: timeout) ?? {
        kill(p.pid, SIGKILL)
        return p.reap(timeout: 5) ?? -1
    }()
    return ShellResult(status: status, stdout: p.stdoutText, stderr: p.stderrText)
}

/// Runs `/bin/bash -c command` under `timeout` (SIGTERM at `timeout` s,
/// SIGKILL 2 s later, to the whole process group), so a hung mount fails the
/// test with status 124/137 instead of hanging it.
public func sh(_ command: String, timeout: Double = 20) -> ShellResult {
    run(["/usr/bin/timeout", "--kill-after=2", String(Int(timeout.rounded(.up))), "/bin/bash", "-c", command], timeout: timeout + 10)
}

/// Single-quotes a string for bash.
public func q(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

// MARK: - the built executable

/// Where SwiftPM put the products: `swift test` runs
/// `<scratch>/<triple>/debug/apmatrixPackageTests.xctest`, and the
/// `apmatrix` executable (a dependency of this target) sits beside it.
public func productsDir() -> URL {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
}

public func apmatrixExecutable() throws -> String {
    var candidates = [productsDir().appendingPathComponent("apmatrix").path]
    // Fallback: walk up from the test bundle looking for <dir>/apmatrix.
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<3 { dir = dir.deletingLastPathComponent(); candidates.append(dir.appendingPathComponent("debug/apmatrix").path) }
    for c in candidates where access(c, X_OK) == 0 { return c }
    throw TestFailure("the apmatrix executable is not next to the test bundle (looked at \(candidates))")
}

// MARK: - the project's Python

/// The package root, from this file's path (Sources/APMatrixTesting/<file>).
public func packageRoot(_ file: String = #filePath) -> String {
    var url = URL(fileURLWithPath: file)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}

/// The venv's Python ($APMATRIX_PYTHON, else <root>/.venv/bin/python3) after
/// checking that it has `modules` and that every file in `files` is there.
/// Missing is a failure, not a skip: these tests are the evidence that real
/// clients work.
public func python(modules: [String], files: [String] = []) throws -> String {
    let setup = "run scripts/setup (it installs chromium, chromium-driver and the venv with qemu.qmp, selenium, prometheus_client and schemathesis)"
    for f in files where access(f, X_OK) != 0 { throw TestFailure("\(f) is missing: \(setup)") }
    let env = ProcessInfo.processInfo.environment["APMATRIX_PYTHON"] ?? ""
    let py = env.isEmpty ? packageRoot() + "/.venv/bin/python3" : env
    guard access(py, X_OK) == 0 else { throw TestFailure("no Python at \(py): \(setup)") }
    let r = sh("\(q(py)) -c \(q("import " + modules.joined(separator: ", ")))", timeout: 60)
    guard r.status == 0 else { throw TestFailure("\(py) cannot import \(modules): \(r.stderr) — \(setup)") }
    return py
}
