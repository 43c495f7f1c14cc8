import APMatrixRuntime
import APMatrixModel
import APMatrixTesting
@testable import APMatrixQMP
import Foundation
import Glibc
import Testing

// Real clients against the monitor: PyPI `qemu.qmp` (async API and the
// legacy synchronous one libvirt-era scripts use) and `qmp-shell` (QMP and
// `-H` HMP mode) with commands piped on stdin, as clients.md describes.

/// `qmp-shell` next to the Python, else the module's entry point run by that Python.
private func qmpShell(_ args: [String]) throws -> (String, [String]) {
    let py = try python()
    let script = URL(fileURLWithPath: py).deletingLastPathComponent().appendingPathComponent("qmp-shell").path
    if FileManager.default.isExecutableFile(atPath: script) { return (script, args) }
    return (py, ["-c", "import sys; sys.argv[0] = 'qmp-shell'; from qemu.qmp.qmp_shell import main; sys.exit(main())"] + args)
}

/// Runs a client to its end (30 s at most) with `stdin` on its standard input.
private func run(_ executable: String, _ arguments: [String], stdin: String = "") -> ShellResult {
    APMatrixTesting.run([executable] + arguments, input: stdin, environment: ["PYTHONUNBUFFERED": "1", "TERM": "dumb"])
}

/// The Python with `qemu.qmp`.
private func python() throws -> String { try APMatrixTesting.python(modules: ["qemu.qmp"]) }

@Suite("Real QMP clients", .serialized)
struct RealClientTests {
    @Test("qemu.qmp (async): device_del, wait for DEVICE_DELETED, device_add, wait for the CRYCB, errors")
    func qemuQMP() throws {
        let f = try Fixture()
        defer { f.close() }
        let script = """
        import asyncio, json, sys
        from qemu.qmp import QMPClient, ExecuteError

        async def main(path, sysfsdev):
            qmp = QMPClient('apmatrix-test')
            await qmp.connect(path)
            res = {}
            res['status'] = await qmp.execute('query-status')
            with qmp.listener('DEVICE_DELETED') as listener:
                res['del'] = await qmp.execute('device_del', {'id': 'hostdev0'})
                ev = await asyncio.wait_for(listener.get(), 10)
                res['deleted'] = ev['data']
            with qmp.listener('__io.github.apmatrix_VFIO_AP_CFG_CHANGED') as listener:
                res['add'] = await qmp.execute('device_add', {'driver': 'vfio-ap', 'id': 'hostdev0', 'sysfsdev': sysfsdev})
                ev = await asyncio.wait_for(listener.get(), 10)
                res['plugged'] = ev['data']
            for cmd, args in [('device-del', {'id': 'hostdev0'}), ('device_del', {'id': 'nope'}),
                              ('device_add', {'driver': 'vfio-ap', 'id': 'again', 'sysfsdev': sysfsdev})]:
                try:
                    await qmp.execute(cmd, args)
                    res[cmd + ':' + args['id']] = 'succeeded'
                except ExecuteError as e:
                    res[cmd + ':' + args['id']] = [e.error_class, str(e)]
            res['qtree'] = await qmp.execute('human-monitor-command', {'command-line': 'info qtree'})
            res['commands'] = sorted(c['name'] for c in await qmp.execute('query-commands'))
            await qmp.disconnect()
            print(json.dumps(res))

        asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2]), 30))
        """
        let out = run(try python(), ["-c", script, f.socket, sysfsdev(mdevA)])
        #expect(out.status == 0, "stderr: \(out.stderr)")
        let r = try JSONValue.parse(Array(out.stdout.utf8))
        #expect(r["status"]?["running"] == .bool(true))
        #expect(r["del"] == .object([:]))
        #expect(r["deleted"] == .object(["device": .string("hostdev0"), "path": .string("/machine/peripheral/hostdev0")]))
        #expect(r["add"] == .object([:]))
        #expect(r["plugged"]?["device"] == .string("hostdev0"))
        #expect(r["plugged"]?["after"]?["apm"]?.ints == [5])
        #expect(r["device-del:hostdev0"] == .array([.string("CommandNotFound"), .string("The command device-del has not been found")]))
        #expect(r["device_del:nope"] == .array([.string("DeviceNotFound"), .string("Device 'nope' not found")]))
        if case .array(let a)? = r["device_add:again"] { #expect(a.first == .string("GenericError")) } else { Issue.record("second device_add succeeded") }
        #expect(r["qtree"]?.stringValue?.contains("dev: vfio-ap, id \"hostdev0\"") == true)
        #expect(f.runtime.snapshot.guests["g1"]?.device?.id == "hostdev0")
        #expect(f.eventually { f.monitor.connectionCount == 0 })
    }

    @Test("qemu.qmp legacy (synchronous) API: cmd and pull_event, then quit")
    func qemuQMPLegacy() throws {
        let f = try Fixture()
        defer { f.close() }
        let script = """
        import json, sys
        from qemu.qmp.legacy import QEMUMonitorProtocol

        mon = QEMUMonitorProtocol(sys.argv[1])
        mon.connect()
        res = {}
        res['del'] = mon.cmd('device_del', id='hostdev0')
        def wait_for(name):
            seen = []
            while True:
                ev = mon.pull_event(wait=10)
                seen.append(ev['event'])
                if ev['event'] == name:
                    return ev, seen
        ev, seen = wait_for('DEVICE_DELETED')
        res['event'] = ev['event']
        res['data'] = ev['data']
        res['seen'] = seen
        res['hmp'] = mon.cmd('human-monitor-command', **{'command-line': 'info status'})
        res['quit'] = mon.cmd('quit')
        res['shutdown'] = wait_for('SHUTDOWN')[0]['event']
        try:
            mon.close()
        except EOFError:
            # As with a real QEMU (see qemu.machine's _close_qmp_connection):
            # after quit the server may close the stream first.
            res['eof_after_quit'] = True
        print(json.dumps(res))
        """
        let out = run(try python(), ["-c", script, f.socket])
        #expect(out.status == 0, "stderr: \(out.stderr)")
        let r = try JSONValue.parse(Array(out.stdout.utf8))
        #expect(r["del"] == .object([:]))
        #expect(r["event"] == .string("DEVICE_DELETED"))
        #expect(r["seen"] == .array([.string("__io.github.apmatrix_VFIO_AP_CFG_CHANGED"), .string("DEVICE_DELETED")]), "the CRYCB empties, then the device goes")
        #expect(r["data"]?["device"] == .string("hostdev0"))
        #expect(r["hmp"] == .string("VM status: running\r\n"))
        #expect(r["quit"] == .object([:]))
        #expect(r["shutdown"] == .string("SHUTDOWN"))
        #expect(f.runtime.snapshot.guests["g1"] == nil)
        #expect(f.eventually { access(f.socket, F_OK) != 0 }, "quit closed the monitor")
    }

    @Test("qmp-shell with piped commands")
    func qmpShellPiped() throws {
        let f = try Fixture()
        defer { f.close() }
        let (exe, args) = try qmpShell([f.socket])
        let out = run(exe, args, stdin: "query-status\ndevice-del id=hostdev0\ndevice_del id=hostdev0\n\n")
        #expect(out.status == 0, "stderr: \(out.stderr)")
        #expect(out.stdout.contains("Connected to QEMU 8.2.0"), "\(out.stdout)")
        #expect(out.stdout.contains(#"{"return": {"status": "running", "singlestep": false, "running": true}}"#), "\(out.stdout)")
        #expect(out.stdout.contains(#"{"error": {"class": "CommandNotFound", "desc": "The command device-del has not been found"}}"#), "\(out.stdout)")
        #expect(out.stdout.contains(#"{"return": {}}"#), "\(out.stdout)")
        #expect(f.runtime.snapshot.guests["g1"]?.device == nil)
        #expect(f.eventually { f.monitor.connectionCount == 0 })
    }

    @Test("the seed's one-liner: echo 'device_del id=hostdev0' | qmp-shell SOCKET")
    func qmpShellOneLiner() throws {
        let f = try Fixture()
        defer { f.close() }
        let (exe, args) = try qmpShell([f.socket])
        let out = run("/bin/sh", ["-c", "echo 'device_del id=hostdev0' | \"$0\" \"$@\""] + [exe] + args)
        #expect(out.status == 0, "stderr: \(out.stderr)")
        #expect(out.stdout.contains(#"{"return": {}}"#), "\(out.stdout)")
        #expect(f.runtime.snapshot.guests["g1"]?.device == nil)
    }

    @Test("qmp-shell -H (HMP through human-monitor-command)")
    func qmpShellHMP() throws {
        let f = try Fixture()
        defer { f.close() }
        let (exe, args) = try qmpShell(["-H", f.socket])
        let out = run(exe, args, stdin: "info status\ninfo qtree\ndevice-del hostdev0\ndevice_del hostdev0\ninfo qtree\n"
            + "device_add vfio-ap,sysfsdev=\(sysfsdev(mdevA)),id=hostdev0\ndevice_del nope\n")
        #expect(out.status == 0, "stderr: \(out.stderr)")
        #expect(out.stdout.contains("Welcome to the HMP shell!"), "\(out.stdout)")
        #expect(out.stdout.contains("VM status: running"), "\(out.stdout)")
        #expect(out.stdout.contains("sysfsdev = \"\(sysfsdev(mdevA))\""), "\(out.stdout)")
        #expect(out.stdout.contains("unknown command: 'device-del'"), "\(out.stdout)")
        #expect(out.stdout.contains("Error: Device 'nope' not found"), "\(out.stdout)")
        #expect(f.runtime.snapshot.guests["g1"]?.device?.id == "hostdev0", "unplugged by device_del, plugged again by device_add")
        // The seed's exact HMP line, as `virsh qemu-monitor-command --hmp` passes it.
        let seed = run("/bin/sh", ["-c", "echo 'device_del hostdev0' | \"$0\" \"$@\""] + [exe] + args)
        #expect(seed.status == 0, "stderr: \(seed.stderr)")
        #expect(f.runtime.snapshot.guests["g1"]?.device == nil)
    }
}
