import ArgumentParser
import CNamespace
import Foundation
import Glibc

/// What `apmatrix exec` makes of the machine for COMMAND: the directories
/// bound over the real ones, in order, and the environment. This is the one
/// place the namespace is described; `enter` is the one place it is made.
struct NamespacePlan: Codable {
    struct Bind: Codable, Equatable {
        /// A directory of the emulated host (a tree's mount, a private directory).
        var source: String
        /// The path it stands for: `/sys`, `/etc/mdevctl.d`, …
        var target: String
    }

    var binds: [Bind]
    /// Variables removed: the tree is at `/sys`, so nothing may point elsewhere.
    var unset: [String]
    var set: [String: String]
    var command: [String]
    /// With `exec --udev`: what libudev needs to see the emulated host.
    var udev: Udev?

    /// `exec --udev` (docs/udev-libvirt.md §1, §4): a private network
    /// namespace, in which a netlink socket is made and handed back to exec
    /// (which sends the host's uevents on it, so they reach only this
    /// namespace), a private `/run` with `/run/udev/control` (without it,
    /// and without a devtmpfs `/dev`, libudev's monitors quietly listen to
    /// nothing), and the preload library with SYSTEMD_DEVICE_VERIFY_SYSFS=0.
    struct Udev: Codable {
        /// libapmatrix-sysfs-magic.so: statfs answers SYSFS_MAGIC under /sys.
        var preload: String
        /// The inherited unix socket on which the netlink socket goes back to exec.
        var channel: Int32
    }

    /// Relocating variables of the tools: with `/sys` and `/etc` replaced,
    /// their defaults are the emulated host, for every version of every tool.
    static let relocations = ["SYSFS_ROOT", "MDEVCTL_ENV_ROOT", "APMATRIX_SYSFS"]
}

enum Namespace {
    /// Why COMMAND was not run: a line for stderr and the exit status (125
    /// the namespace, 126 not executable, 127 not found, as `env` and `chroot`).
    struct Refusal: Error {
        let message: String
        let status: Int32
    }

    /// Makes a mount namespace for this thread (the calling thread alone
    /// runs from here to `execvp`), private from the start so that nothing
    /// bound here reaches the machine, binds the plan's directories, sets
    /// the environment and replaces this process with COMMAND. Returns only
    /// on failure; a failure before `execvp` has bound nothing outside.
    static func enter(_ plan: NamespacePlan) -> Refusal {
        let flags = cnamespace_clone_newns | (plan.udev == nil ? 0 : cnamespace_clone_newnet)
        guard cnamespace_unshare(flags) == 0 else {
            return Refusal(message: "cannot make a private mount\(plan.udev == nil ? "" : " and network") namespace (unshare: \(errnoText(errno))): apmatrix exec needs root with CAP_SYS_ADMIN; nothing was run", status: 125)
        }
        guard mount("none", "/", nil, UInt(MS_REC | MS_PRIVATE), nil) == 0 else {
            return Refusal(message: "cannot make / private in the new namespace (\(errnoText(errno))); nothing was run", status: 125)
        }
        if let udev = plan.udev, let refusal = prepareUdev(udev) { return refusal }
        for b in plan.binds {
            guard mount(b.source, b.target, nil, UInt(MS_BIND), nil) == 0 else {
                return Refusal(message: "cannot bind \(b.source) over \(b.target) (\(errnoText(errno))); nothing was run", status: 125)
            }
        }
        for name in plan.unset { unsetenv(name) }
        for (name, value) in plan.set { setenv(name, value, 1) }
        if let udev = plan.udev {
            // For COMMAND and everything it starts (libvirtd's children too).
            let preloads = [udev.preload] + (getenv("LD_PRELOAD").map { [String(cString: $0)] } ?? [])
            setenv("LD_PRELOAD", preloads.joined(separator: " "), 1)
            setenv("SYSTEMD_DEVICE_VERIFY_SYSFS", "0", 1)
        }
        // COMMAND starts as from a shell: no signal blocked (this thread may
        // be a runtime worker, which blocks them) and none ignored (the
        // runtime ignores SIGPIPE).
        for sig in 1..<32 where sig != SIGKILL && sig != SIGSTOP { signal(Int32(sig), SIG_DFL) }
        var none = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, nil)
        let argv: [UnsafeMutablePointer<CChar>?] = plan.command.map { strdup($0) } + [nil]
        execvp(plan.command[0], argv)
        let e = errno
        return Refusal(message: "\(plan.command[0]): \(errnoText(e))", status: e == ENOENT ? 127 : 126)
    }
}

extension Namespace {
    /// In the new namespaces, before the binds: a private `/run` (so that
    /// nothing made there reaches the machine's) with what libudev checks
    /// for (`/run/udev/control`) and the mount points of the binds under
    /// it; then the netlink socket of the new network namespace goes back
    /// to exec over the plan's channel.
    static func prepareUdev(_ udev: NamespacePlan.Udev) -> Refusal? {
        guard mount("tmpfs", "/run", "tmpfs", UInt(MS_NOSUID | MS_NODEV), "mode=0755") == 0 else {
            return Refusal(message: "cannot mount a private /run in the new namespace (\(errnoText(errno))); nothing was run", status: 125)
        }
        mkdir("/run/lock", 0o1777)
        mkdir("/run/udev", 0o755)
        let control = open("/run/udev/control", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard control >= 0 else {
            return Refusal(message: "cannot create /run/udev/control in the new namespace (\(errnoText(errno))); nothing was run", status: 125)
        }
        close(control)
        let netlink = cnamespace_uevent_socket()
        guard netlink >= 0, cnamespace_send_fd(udev.channel, netlink) == 0 else {
            return Refusal(message: "cannot hand the new network namespace's uevent socket to apmatrix exec (\(errnoText(errno))); nothing was run", status: 125)
        }
        close(netlink)
        close(udev.channel)
        return nil
    }
}

func errnoText(_ e: Int32) -> String { String(cString: strerror(e)) }

/// The helper `apmatrix exec` starts: it enters the namespace and becomes
/// COMMAND. Not for people: the plan comes from `exec`.
struct ExecNamespace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec-namespace",
        abstract: "Internal: enter the namespace apmatrix exec planned and run its command.",
        shouldDisplay: false)

    @Argument(help: "The plan, as JSON.") var plan: String

    func run() throws {
        let refusal: Namespace.Refusal
        do {
            refusal = Namespace.enter(try JSONDecoder().decode(NamespacePlan.self, from: Data(plan.utf8)))
        } catch {
            refusal = Namespace.Refusal(message: "not a plan from apmatrix exec: \(error)", status: 125)
        }
        writeLine(STDERR_FILENO, "apmatrix exec: " + refusal.message)
        throw ExitCode(refusal.status)
    }
}
