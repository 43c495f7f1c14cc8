// The client tools the live tests drive from Python: the project's venv
// ($APMATRIX_PYTHON, else .venv), which scripts/setup creates.

import Foundation
import Glibc

/// The package root, from this file's path (Tests/APMatrixMountTests/<file>).
func packageRoot(_ file: String = #filePath) -> String {
    var url = URL(fileURLWithPath: file)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}

/// The venv's Python ($APMATRIX_PYTHON, else <root>/.venv/bin/python3) after
/// checking that it has `modules` and that every file in `files` is there.
func python(modules: [String], files: [String] = []) throws -> String {
    let setup = "run scripts/setup (it installs chromium, chromium-driver and the venv with selenium and prometheus_client)"
    for f in files where access(f, X_OK) != 0 { throw TestFailure("\(f) is missing: \(setup)") }
    let env = ProcessInfo.processInfo.environment["APMATRIX_PYTHON"] ?? ""
    let py = env.isEmpty ? packageRoot() + "/.venv/bin/python3" : env
    guard access(py, X_OK) == 0 else { throw TestFailure("no Python at \(py): \(setup)") }
    let r = sh("\(q(py)) -c \(q("import " + modules.joined(separator: ", ")))", timeout: 60)
    guard r.status == 0 else { throw TestFailure("\(py) cannot import \(modules): \(r.stderr) — \(setup)") }
    return py
}
