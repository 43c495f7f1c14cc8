// The control API against its own OpenAPI document: schemathesis (PyPI, in
// the venv scripts/setup makes) generates requests from the document a live
// `apmatrix serve` serves and runs every check on the answers (status codes,
// schemas, content types, headers, valid data accepted, invalid refused, 405
// with Allow, auth enforced). Tests/api holds its configuration and hooks.

import APMatrixTesting
import Foundation
import Glibc
import Testing

extension MountTests {
    @Suite struct APIContract {
        @Test func schemathesisFindsNoFailure() throws {
            let py = try python(modules: ["schemathesis"])
            let schemathesis = URL(fileURLWithPath: py).deletingLastPathComponent().appendingPathComponent("schemathesis").path
            // Requests start guests whose trees mount where the request says: each
            // daemon's mounts stay in a mount namespace of its own.
            let source = try ServeProcess(isolated: true)
            defer { source.finish(guestDirs: []) }
            let target = try ServeProcess(isolated: true)
            defer { target.finish(guestDirs: []) }
            let sandbox = source.base + "/sandbox"
            #expect(mkdir(sandbox, 0o700) == 0)
            let token = try String(contentsOfFile: source.tokenFile, encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let config = packageRoot() + "/Tests/api"
            // From the daemon's directory: schemathesis and hypothesis keep their caches in the current one.
            let r = sh("""
                cd \(q(source.base)) && PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=\(q(config)) \
                APMATRIX_SANDBOX=\(q(sandbox)) APMATRIX_MIGRATION_TARGET=\(q(target.server)) \
                \(q(schemathesis)) --no-color --config-file \(q(config + "/schemathesis.toml")) run \(q(source.server + "/api/v1/openapi.yaml")) \
                --url \(q(source.server + "/api/v1")) -H \(q("Authorization: Bearer \(token)")) --checks all --seed 1
                """, timeout: 900)
            let summary = r.stdout.split(separator: "\n").drop { !$0.contains("SUMMARY") }.joined(separator: "\n")
            print("schemathesis against \(source.server):\n\(summary)")
            #expect(r.status == 0, "schemathesis found failures:\n\(r.stdout)\n\(r.stderr)\nserve: \(source.process.stderrText)")
            // 29 operations; schemathesis leaves out the one it loaded the document from (GET /openapi.yaml).
            #expect(summary.contains("Tested: 28"), "\(summary)")
            // Whatever was generated, every invariant holds afterwards.
            let check = sh("\(q(try apmatrixExecutable())) check-state --server \(q(source.server))")
            #expect(check.status == 0, "the host is not sound after the run: \(check)")
        }
    }
}
