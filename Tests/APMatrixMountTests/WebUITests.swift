// The web page in a real browser and /metrics read by a real Prometheus
// parser, against `apmatrix serve` as a process with its FUSE mount: Debian's
// chromium and chromedriver driven by Selenium, prometheus_client from PyPI
// (scripts/setup installs all of them). Missing tools fail the tests.

import APMatrixTesting
import Foundation
import Glibc
import Testing

/// Runs `serve --host hosts/seed-example.json` and returns it with its API's base URL.
private func serveSeedExample(_ dir: String) throws -> (Spawned, String) {
    let p = try startServe(dir, host: packageRoot() + "/hosts/seed-example.json")
    guard let line = p.stdoutText.split(separator: "\n").first, line.hasPrefix("ready http://") else {
        throw TestFailure("serve did not print `ready http://…`: \(p.stdoutText) \(p.stderrText)")
    }
    return (p, String(line.dropFirst("ready ".count)))
}

extension MountTests {
    @Suite struct WebUI {
        @Test func pageInChromium() throws {
            let py = try python(modules: ["selenium"], files: ["/usr/bin/chromium", "/usr/bin/chromedriver"])
            let dir = try makeTempDir()
            var serve: Spawned?
            defer { cleanupServe(serve, dir) }
            let (p, url) = try serveSeedExample(dir)
            serve = p
            // The page's URL with the token, as serve logs it for the browser.
            let printed = try #require(p.stderrText.range(of: url + "/?token="), "serve did not log the page's URL: \(p.stderrText)")
            let page = url + "/?token=" + p.stderrText[printed.upperBound...].prefix(64)
            let artifacts = packageRoot() + "/.build/artifacts"
            // SE_OFFLINE: Selenium must not fetch a driver; the script names Debian's.
            let r = sh("SE_OFFLINE=true HOME=/tmp \(q(py)) \(q(packageRoot() + "/Tests/browser/web_ui.py")) \(q(page)) \(q(dir)) \(q(artifacts))",
                       timeout: 240)
            #expect(r.status == 0, "browser test failed:\n\(r.stdout)\n\(r.stderr)\nserve: \(p.stderrText)")
            #expect(r.stdout.hasSuffix("OK\n"), "\(r.stdout)")
            print("web UI screenshots in \(artifacts): \(r.stdout)")
            let png = FileManager.default.contents(atPath: artifacts + "/web-ui-1280x800.png") ?? Data()
            #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "no PNG screenshot")
        }

        /// An open page (an endless event stream) must not hold `serve` up at SIGTERM.
        @Test func sigtermWithAnOpenEventStream() throws {
            let dir = try makeTempDir()
            var serve: Spawned?
            defer { cleanupServe(serve, dir) }
            let (p, url) = try serveSeedExample(dir)
            serve = p
            let port = url.split(separator: ":").last.map(String.init) ?? ""
            let client = try Spawned(["/usr/bin/timeout", "60", "/bin/bash", "-c", """
                exec 3<>/dev/tcp/127.0.0.1/\(port)
                printf 'GET /api/v1/events/stream HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n\\r\\n' >&3
                while IFS= read -r line <&3; do echo "$line"; done
                """])
            defer { client.signal(SIGKILL); client.reap(timeout: 5) }
            #expect(client.waitForStdoutLine(timeout: 10) { $0.hasPrefix("retry: 1000") } != nil, "\(client.stdoutText)")
            p.signal(SIGTERM)
            #expect(p.reap(timeout: 15) == 0, "serve did not exit 0 with a stream open: \(p.stderrText)")
            #expect(!isApmatrixMount(dir))
        }

        @Test func metricsParseWithPrometheusClient() throws {
            let py = try python(modules: ["prometheus_client"])
            let dir = try makeTempDir()
            var serve: Spawned?
            defer { cleanupServe(serve, dir) }
            let (p, url) = try serveSeedExample(dir)
            serve = p
            let create = dir + "/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create"
            let m = dir + "/devices/vfio_ap/matrix/62177883-f1bb-47f0-914d-32a22e3a8804"
            let setup = sh("""
                echo -5 > \(q(dir))/bus/ap/apmask && echo 62177883-f1bb-47f0-914d-32a22e3a8804 > \(q(create)) &&
                echo 5 > \(q(m))/assign_adapter && echo 4 > \(q(m))/assign_domain &&
                ! echo 256 > \(q(m))/assign_adapter && cat \(q(m))/matrix
                """)
            #expect(setup.status == 0 && setup.stdout == "05.0004\n", "\(setup)")
            let r = sh("\(q(py)) \(q(packageRoot() + "/Tests/browser/parse_metrics.py")) \(q(url + "/metrics"))", timeout: 60)
            #expect(r.status == 0, "prometheus_client rejected /metrics: \(r.stderr)")
            let families = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: [String: Any]] ?? [:]
            func samples(_ family: String) -> [(String, [String: String], Double)] {
                (families[family]?["samples"] as? [[Any]] ?? []).map { ($0[0] as! String, $0[1] as! [String: String], ($0[2] as! NSNumber).doubleValue) }
            }
            func value(_ family: String, _ labels: [String: String] = [:]) -> Double? {
                samples(family).first { $0.0 == family + (families[family]?["type"] as? String == "counter" ? "_total" : "") && $0.1 == labels }?.2
            }
            #expect(families["apmatrix_operations"]?["type"] as? String == "counter")
            #expect(value("apmatrix_operations", ["kind": "sysfs:assign_adapter", "result": "ok"]) == 1)
            #expect(value("apmatrix_operations", ["kind": "sysfs:assign_adapter", "result": "ENODEV"]) == 1)
            #expect(value("apmatrix_operations", ["kind": "sysfs:create", "result": "ok"]) == 1)
            #expect(value("apmatrix_mdevs") == 1)
            #expect(value("apmatrix_guests") == 0)
            #expect(value("apmatrix_available_instances") == 65535)
            // seed example: adapters 4-7 x 19 domains; apmask -5 gives adapter 5's 19 queues to vfio_ap
            #expect(value("apmatrix_queues", ["driver": "vfio_ap"]) == 19)
            #expect(value("apmatrix_queues", ["driver": "cex4queue"]) == 57)
            #expect(value("apmatrix_queues", ["driver": "none"]) == 0)
            #expect(families["apmatrix_fuse_request_duration_seconds"]?["type"] as? String == "histogram")
            let writes = samples("apmatrix_fuse_request_duration_seconds").first {
                $0.0 == "apmatrix_fuse_request_duration_seconds_count" && $0.1 == ["op": "write"]
            }
            // five writes reached the model; the refused one is a FUSE request too
            #expect(writes?.2 == 5, "\(String(describing: writes))")
        }
    }
}
