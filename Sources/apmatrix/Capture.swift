import APMatrixModel
import APMatrixRuntime
import APMatrixTools
import ArgumentParser
import Foundation
import Glibc

struct Capture: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Write a host file (and with --state, the state) from a sysfs tree: by default this machine's /sys.",
        discussion: """
            Run it on an s390 LPAR to get an emulated copy of it: the LPAR's adapters with their types,
            configured state and domain restrictions (from which queues exist), usage and control
            domains, maxima, facilities, and the masks as boot values go into the host file; with
            --state FILE, the host as it is now (bindings, online states, ap_domain, mdevs with their
            assignments, guests using them) goes into a state `apmatrix serve --state FILE` starts
            from, and with --mdevctl-etc DIR mdevctl's definitions go beside it, where `apmatrix exec`
            shows them as /etc/mdevctl.d. What sysfs cannot tell (the order mdevs were created in,
            guests' names and CPU models, facilities that leave no trace) is assumed and said: in the
            host file's "notes" and on stderr.
            Examples:
              apmatrix capture > host.json
              apmatrix capture -o host.json --state state.db --mdevctl-etc /etc/mdevctl.d
              apmatrix serve --mount /tmp/ap/sys --host host.json --state state.db
            """)

    @OptionGroup var sysfs: SysfsOptions

    @Option(help: ArgumentHelp("mdevctl's directory whose matrix/ definitions to keep (such as /etc/mdevctl.d); needs --state.",
                               valueName: "DIR"))
    var mdevctlEtc: String?

    @Option(name: .shortAndLong, help: ArgumentHelp("Write the host file here instead of stdout.", valueName: "FILE"))
    var output: String?

    @Option(help: ArgumentHelp("Also write the host as it is now, as a new state for serve --state (FILE must not exist).",
                               valueName: "FILE"))
    var state: String?

    func validate() throws {
        if mdevctlEtc != nil && state == nil {
            throw ValidationError("--mdevctl-etc needs --state FILE: the definitions are kept beside the state, in FILE.root/etc/mdevctl.d")
        }
        if let state, access(state, F_OK) == 0 {
            throw ValidationError("--state \(state) exists: capture writes a new state; remove it or choose another path")
        }
    }

    func run() throws {
        let snapshot = try sysfs.snapshot()
        let capture: HostCapture
        do throws(PlanError) { capture = try HostCapture(snapshot, mdevctlEtc: mdevctlEtc) } catch {
            throw Failure(error.description)
        }
        if let state { try write(capture, state: absolutePath(state)) }
        let text = HostFile.render(capture.description, notes: capture.notes)
        if let output {
            do { try text.write(toFile: output, atomically: true, encoding: .utf8) } catch {
                throw Failure("cannot write \(output): \(error.localizedDescription)")
            }
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
        for note in capture.notes { writeLine(STDERR_FILENO, "note: " + note) }
    }

    /// The state through the runtime's own store, and the definitions in the host's private root.
    func write(_ capture: HostCapture, state: String) throws {
        do throws(StateDocument.Refused) {
            try StateStore.open(path: state, profile: capture.host.profile, fresh: capture.host).0.close()
        } catch {
            throw Failure(error.description)
        }
        guard !capture.definitions.isEmpty else { return }
        let dir = PrivateRoot.beside(stateFile: state).mdevctlDirectory + "/matrix"
        do throws(Files.Failure) { try Files.makeDirectories(dir) } catch { throw Failure("cannot create \(dir): \(error)") }
        for d in capture.definitions {
            do { try d.text.write(toFile: dir + "/" + d.name, atomically: true, encoding: .utf8) } catch {
                throw Failure("cannot write \(dir)/\(d.name): \(error.localizedDescription)")
            }
        }
    }
}
