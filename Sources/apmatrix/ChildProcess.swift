import Glibc
import Synchronization

/// The child `exec` waits for, for the signal handler (which can reach only globals).
private let forwardTo = Atomic<Int32>(0)
/// A signal that came before the child existed.
private let pending = Atomic<Int32>(0)

/// Signals sent to `apmatrix exec` that COMMAND must get too.
private let forwarded = [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM]

/// Passes a signal sent with kill(2) on to the child. One the terminal sent
/// (Ctrl-C, Ctrl-\) already reached the child, which is in our process
/// group: forwarding it would deliver it twice.
private func forward(_ sig: Int32, _ info: UnsafeMutablePointer<siginfo_t>?, _: UnsafeMutableRawPointer?) {
    guard let info, info.pointee.si_code <= 0 else { return }
    let child = forwardTo.load(ordering: .acquiring)
    if child == 0 { pending.store(sig, ordering: .releasing); return }
    if info.pointee._sifields._kill.si_pid != child { kill(child, sig) }
}

/// A process that shares our terminal, standard input, output and error.
enum ChildProcess {
    struct SpawnError: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs `argv` (`argv[0]` a path) with our environment, forwarding the
    /// signals sent to us, and returns its wait status once it ended.
    static func run(_ argv: [String]) throws(SpawnError) -> Int32 {
        var action = sigaction()
        action.__sigaction_handler.sa_sigaction = forward
        action.sa_flags = SA_SIGINFO | SA_RESTART
        sigemptyset(&action.sa_mask)
        for sig in forwarded { sigaction(sig, &action, nil) }

        // The child starts with every signal at its default and none blocked,
        // whatever this process's threads did with them.
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigemptyset(&all)
        for sig in 1..<32 where sig != SIGKILL && sig != SIGSTOP { sigaddset(&all, Int32(sig)) }
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let cargv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cargv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], nil, &attr, cargv, environ)
        guard rc == 0 else { throw SpawnError(description: "cannot start \(argv[0]): \(errnoText(rc))") }
        forwardTo.store(pid, ordering: .releasing)
        let early = pending.exchange(0, ordering: .acquiringAndReleasing)
        if early != 0 { kill(pid, early) }

        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        forwardTo.store(0, ordering: .releasing)
        return status
    }

    /// Ends this process the way the child ended: the same exit status, or
    /// death by the same signal (without a core file of our own).
    static func endLike(_ status: Int32) -> Int32 {
        let sig = status & 0x7f
        guard sig != 0 else { return (status >> 8) & 0xff }
        var noCore = rlimit(rlim_cur: 0, rlim_max: 0)
        setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &noCore)
        signal(sig, SIG_DFL)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, sig)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        kill(getpid(), sig)
        return 128 + sig
    }
}
