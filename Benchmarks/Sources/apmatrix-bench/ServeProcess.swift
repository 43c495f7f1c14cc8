import Glibc

/// `apmatrix serve` as a process (a release build), its tree at `mount`.
final class ServeProcess {
    let pid: pid_t
    let mount: String
    let address: String
    let startup: Double

    /// Starts serve with `arguments` and waits for its `ready ADDRESS` line.
    init(binary: String, mount: String, _ arguments: [String]) {
        self.mount = mount
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        let argv = [binary, "serve", "--mount", mount, "--listen", "127.0.0.1:0"] + arguments
        let cargv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cargv.forEach { free($0) } }
        let t0 = now()
        var p: pid_t = 0
        guard posix_spawn(&p, binary, &actions, nil, cargv, environ) == 0 else { fatalError("cannot start \(binary)") }
        close(fds[1])
        pid = p
        var line: [UInt8] = []
        var c: UInt8 = 0
        while read(fds[0], &c, 1) == 1, c != 10 { line.append(c) }
        close(fds[0])
        startup = now() - t0
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("ready ") else { fatalError("serve \(arguments) did not start (see its stderr)") }
        address = String(text.dropFirst(6))
    }

    /// A number of `/proc/PID/status` or `/proc/PID/io` (`VmHWM:`, `write_bytes:`).
    func proc(_ file: String, _ key: String) -> Double { procNumber("/proc/\(pid)/\(file)", key) }

    /// SIGTERM, and wait for the exit (serve unmounts).
    func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }
}
