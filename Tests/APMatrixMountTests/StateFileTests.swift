// The state database as a file: `serve --state` refuses one it cannot use,
// before changing anything, with one line, and leaves it as it was (bytes
// compared); a version-1 JSON state file is imported once; the state is
// queryable with the sqlite3 shell while the daemon runs (README queries).

import APMatrixRuntime
import APMatrixTesting
import Foundation
import Glibc
import Testing

/// Makes a bad state file at `path` (the test's temp dir is its directory).
typealias Spoil = @Sendable (_ path: String) throws -> Void

/// Runs `sql` on the database at `path` with the sqlite3 shell.
func sqlite(_ path: String, _ sql: String, readOnly: Bool = false) -> ShellResult {
    sh("sqlite3 \(readOnly ? "-readonly " : "")\(q(path)) \(q(sql))")
}

extension MountTests {
    @Suite struct StateFiles {
        static let cases: [(String, Spoil, String)] = [
            ("truncated", { path in
                try makeStateDatabase(path)
                #expect(truncate(path, off_t(fileBytes(path).count / 2)) == 0)
            }, "cannot be read: database disk image is malformed (SQLite error 11)"),
            ("header only", { path in
                try makeStateDatabase(path)
                #expect(truncate(path, 60) == 0)
            }, "truncated (60 bytes: not even an SQLite header)"),
            ("not SQLite", { path in
                try Data("hello, world\n".utf8).write(to: URL(fileURLWithPath: path))
            }, "not an SQLite database"),
            ("empty", { path in
                try Data().write(to: URL(fileURLWithPath: path))
            }, "empty (0 bytes): not an apmatrix state database"),
            ("someone else's SQLite", { path in
                #expect(sqlite(path, "CREATE TABLE notes(text); INSERT INTO notes VALUES('mine')").status == 0)
            }, "an SQLite database, but not an apmatrix state (application_id 0)"),
            ("newer schema", { path in
                try makeStateDatabase(path)
                #expect(sqlite(path, "PRAGMA user_version = 3").status == 0)
            }, "written by a newer apmatrix (schema version 3; this one reads up to 2)"),
            ("another profile", { path in
                try makeStateDatabase(path, profile: .upstream)
            }, "it records profile upstream, not seed; start with --profile upstream"),
            ("an APQN in two mdevs", { path in
                try makeStateDatabase(path)
                let doc = #"{"guest":null,"iommuGroup":1,"matrix":{"adm":"","apm":"5","aqm":"4"},"serial":1,"shadow":{"adm":"","apm":"","aqm":""},"uuid":"cef03c3c-903d-4ecc-9a83-40694cb8aee4"}"#
                #expect(sqlite(path, "INSERT INTO mdevs(uuid, serial, apm, aqm, adm, doc) VALUES('\(uuidB)', 1, '', '', '', '\(doc)')").status == 0)
            }, "apqn-in-two-mdevs: queue 05.0004 is assigned to mdevs \(uuidA) and \(uuidB)"),
            ("a guest without its mdev", { path in
                try makeStateDatabase(path)
                #expect(sqlite(path, "DELETE FROM mdevs").status == 0)
            }, ".host: a state the kernel cannot reach: guest-link: guest g1's device hostdev0 names mdev \(uuidA), which is not attached to it"),
            ("a row that is not JSON", { path in
                try makeStateDatabase(path)
                #expect(sqlite(path, "UPDATE guests SET doc = '{\"name\": \"g1\",'").status == 0)
            }, "cannot be read: malformed JSON (SQLite error 1)"),
            ("a version-1 JSON state file", { path in
                try Data(#"{"format": "apmatrix-state", "version": 1}"#.utf8).write(to: URL(fileURLWithPath: path))
            }, "a version-1 JSON state file; import it once into a state database with `apmatrix serve --state NEW.db --import-state STATE`"),
        ]

        @Test(arguments: 0..<cases.count)
        func badStateFilesAreRefusedAndKept(_ index: Int) throws {
            let (name, spoil, reason) = Self.cases[index]
            let base = try makeTempDir()
            let dir = base + "/mnt", state = base + "/host.db"
            var serve: Spawned?
            defer { cleanupServe(serve, dir); _ = sh("rm -rf \(q(base))") }
            try spoil(state)
            let before = fileBytes(state)
            let (p, address) = try startStateServe(dir, state: state)
            serve = p
            #expect(address == nil, "\(name)")
            #expect(p.reap(timeout: 15) == 1)
            let lines = p.stderrText.split(separator: "\n")
            #expect(lines.last?.hasPrefix("Error: state file \(state): ") == true
                    && lines.last?.contains(reason.replacingOccurrences(of: "STATE", with: state)) == true
                    && lines.last?.hasSuffix("; the file is left as it is (start with --reset to replace it)") == true,
                    "\(name): stderr: \(p.stderrText)")
            #expect(fileBytes(state) == before, "\(name): the file changed")
            #expect(!isApmatrixMount(dir))
            if index == 0 {
                // --reset starts fresh and replaces the file
                let (fresh, freshAddress) = try startStateServe(dir, state: state, extra: ["--reset"])
                serve = fresh
                #expect(freshAddress != nil, "stderr: \(fresh.stderrText)")
                #expect(sqlite(state, "SELECT count(*) FROM mdevs", readOnly: true).stdout == "0\n")
            }
        }

        /// A version-1 JSON state file (an earlier apmatrix wrote it) becomes a
        /// database once, with `--import-state`; after that the database is the state.
        @Test func aVersion1StateFileIsImportedOnce() throws {
            let base = try makeTempDir()
            let dir = base + "/mnt", state = base + "/host.db"
            var serve: Spawned?
            defer { cleanupServe(serve, dir); _ = sh("rm -rf \(q(base))") }
            let json = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .appendingPathComponent("../../Fuzz/corpus/statefile/guest.json").standardized.path
            let original = fileBytes(json)
            var (p, address) = try startStateServe(dir, state: state, extra: ["--import-state", json])
            serve = p
            let server = try #require(address, "stderr: \(p.stderrText)")
            let guests = sh("curl -sf \(q(server))/api/v1/guests")
            #expect(guests.stdout.contains("\"name\":\"g1\""), "\(guests)")
            let mdevs = sqlite(state, "SELECT uuid, guest FROM mdevs ORDER BY serial", readOnly: true)
            p.signal(SIGTERM)
            #expect(p.reap(timeout: 15) == 0, "stderr: \(p.stderrText)")
            #expect(fileBytes(json) == original)
            // Again with --import-state: the database exists, so it is refused.
            (p, address) = try startStateServe(dir, state: state, extra: ["--import-state", json])
            serve = p
            #expect(address == nil && p.reap(timeout: 15) == 1)
            #expect(p.stderrText.contains("state file \(state): it exists already, and --import-state makes a new state"), "\(p.stderrText)")
            // The database alone resumes what was imported.
            (p, address) = try startStateServe(dir, state: state)
            serve = p
            #expect(address != nil, "stderr: \(p.stderrText)")
            #expect(sqlite(state, "SELECT uuid, guest FROM mdevs ORDER BY serial", readOnly: true).stdout == mdevs.stdout)
            #expect(mdevs.stdout.contains("|g1\n"), "\(mdevs)")
        }

        /// The README's queries, with the sqlite3 shell, while the daemon runs.
        @Test func theStateIsQueryableWithTheSQLiteShell() throws {
            let base = try makeTempDir()
            let dir = base + "/mnt", state = base + "/host.db"
            var serve: Spawned?
            defer { cleanupServe(serve, dir); _ = sh("rm -rf \(q(base))") }
            let (p, address) = try startStateServe(dir, state: state, extra: ["--host", packageRoot() + "/hosts/seed-example.json"])
            serve = p
            let server = try #require(address, "stderr: \(p.stderrText)")
            #expect(writeAttr(dir + "/bus/ap/apmask", "-5,-6") == .ok)
            #expect(writeAttr(dir + "/bus/ap/aqmask", "-4,-0x47") == .ok)
            for (u, d) in [(uuidA, "4"), (uuidB, "0x47")] {
                #expect(writeAttr(dir + "/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create", u) == .ok)
                #expect(writeAttr(dir + "/devices/vfio_ap/matrix/\(u)/assign_adapter", "5") == .ok)
                #expect(writeAttr(dir + "/devices/vfio_ap/matrix/\(u)/assign_domain", d) == .ok)
            }
            let start = sh("\(q(try apmatrixExecutable())) guest start g1 --device vfio-ap,sysfsdev=\(dir)/devices/vfio_ap/matrix/\(uuidA),id=hostdev0 --server \(q(server))")
            #expect(start.status == 0, "\(start)")
            #expect(writeAttr(dir + "/devices/vfio_ap/matrix/\(uuidA)/unassign_domain", "4") == .ok)
            // which mdev holds APQN 05.0047
            #expect(sqlite(state, "SELECT uuid FROM mdevs WHERE substr(apm, 1 + 0x05, 1) = '1' AND substr(aqm, 1 + 0x0047, 1) = '1'",
                           readOnly: true).stdout == uuidB + "\n")
            // a queue's reset count and whose state it holds
            #expect(sqlite(state, "SELECT apqn, resets, holds_state_of FROM hardware_queues WHERE apqn = '05.0004'",
                           readOnly: true).stdout == "05.0004|1|\n")
            // the guests and their mdevs, with their CPU model
            #expect(sqlite(state, "SELECT name, mdev, json_extract(doc, '$.cpu') FROM guests", readOnly: true).stdout
                    == "g1|\(uuidA)|host,ap=on,apqci=on,apft=on,apqi=on,appv=on,appvi=on\n")
            // the last log lines
            #expect(sqlite(state, "SELECT line FROM log ORDER BY sequence DESC LIMIT 1", readOnly: true).stdout
                    == "queue 05.0004 reset (zeroized): left the shadow: domain 0004 unassigned\n")
            p.signal(SIGTERM)
            #expect(p.reap(timeout: 15) == 0, "stderr: \(p.stderrText)")
        }
    }
}
