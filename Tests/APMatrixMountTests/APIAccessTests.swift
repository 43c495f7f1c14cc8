// Who may change the host through the API (README "The control API"):
// reads are open as sysfs reads are, changes are for root and the user
// running serve. An unprivileged process (setpriv to nobody) reads but
// cannot write, over TCP (no token) and over a unix socket (SO_PEERCRED);
// root's CLI finds the token by itself; the page's token becomes a cookie.

import APMatrixTesting
import Foundation
import Glibc
import Testing

/// `curl` as nobody (uid and gid 65534, no groups): prints the HTTP status.
func curlAsNobody(_ args: String) -> String {
    sh("setpriv --reuid=65534 --regid=65534 --clear-groups curl -s -o /dev/null -w '%{http_code}' \(args)").stdout
}

/// `curl` as root: prints the HTTP status.
func curl(_ args: String) -> String {
    sh("curl -s -o /dev/null -w '%{http_code}' \(args)").stdout
}

let apmaskWrite = #"-X POST -H 'Content-Type: application/json' -d '{"path":"bus/ap/apmask","value":"-5"}'"#

extension MountTests {
    @Suite struct APIAccess {
        @Test func overTCPAChangeNeedsTheToken() throws {
            let s = try ServeProcess()
            defer { s.finish(guestDirs: []) }
            let file = s.tokenFile
            var st = stat()
            #expect(stat(file, &st) == 0 && st.st_mode & 0o777 == 0o600 && st.st_uid == 0, "token file \(file)")
            #expect(stat(s.runDirectory, &st) == 0 && st.st_mode & 0o777 == 0o700)
            let token = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .newlines)
            #expect(token.count == 64 && token.allSatisfy(\.isHexDigit))

            // Reads are open; a change without the token, or with a wrong one, is refused.
            #expect(curlAsNobody("\(q(s.server))/api/v1/sysfs?path=bus/ap/apmask") == "200")
            #expect(curlAsNobody("\(q(s.server))/metrics") == "200")
            #expect(curlAsNobody("\(apmaskWrite) \(q(s.server))/api/v1/sysfs") == "401")
            #expect(curlAsNobody("\(apmaskWrite) -H 'Authorization: Bearer \(String(repeating: "0", count: 64))' \(q(s.server))/api/v1/sysfs") == "401")
            #expect(curl("\(apmaskWrite) -H 'Authorization: Bearer wrong' \(q(s.server))/api/v1/sysfs") == "401")
            #expect(cat(s.sys + "/bus/ap/apmask") == allOnesMask)

            // Root's CLI finds the token file; a wrong --token is refused with the errno.
            #expect(try s.cli("host domain add 100").status == 0)
            let wrong = try s.cli("host domain remove 100 --token \(String(repeating: "1", count: 64))")
            #expect(wrong.status == 1 && wrong.stderr.hasPrefix("Error: EACCES: the token does not match this daemon's"), "\(wrong)")
            #expect(curl("\(apmaskWrite) -H 'Authorization: Bearer \(token)' \(q(s.server))/api/v1/sysfs") == "200")
            #expect(cat(s.sys + "/bus/ap/apmask") == "0xfbffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n")

            s.process.signal(SIGTERM)
            #expect(s.process.reap(timeout: 15) == 0)
            #expect(access(file, F_OK) != 0, "the token file outlived serve")
        }

        /// The URL serve prints gives the page its token as an HttpOnly,
        /// SameSite=Strict cookie, accepted from the daemon's own page only.
        @Test func thePageKeepsTheTokenInACookie() throws {
            let s = try ServeProcess()
            defer { s.finish(guestDirs: []) }
            let printed = try #require(s.process.stderrText.range(of: s.server + "/?token="), "\(s.process.stderrText)")
            let token = String(s.process.stderrText[printed.upperBound...].prefix(64))
            let port = s.server.split(separator: ":").last.map(String.init) ?? ""
            let login = sh("curl -s -D - -o /dev/null \(q(s.server + "/?token=" + token))")
            #expect(login.stdout.hasPrefix("HTTP/1.1 303 See Other"), "\(login)")
            #expect(login.stdout.lowercased().contains("location: /\r\n"))
            let setCookie = login.stdout.split(separator: "\r\n").first { $0.hasPrefix("Set-Cookie: ") }?.dropFirst("Set-Cookie: ".count)
            #expect(Set(setCookie?.split(separator: "; ").map(String.init) ?? [])
                    == ["apmatrix_token_\(port)=\(token)", "Path=/", "HttpOnly", "SameSite=Strict"], "\(login)")
            #expect(curl(q(s.server + "/?token=" + String(repeating: "0", count: 64))) == "401")
            let cookie = "-H 'Cookie: apmatrix_token_\(port)=\(token)'"
            #expect(curl("\(apmaskWrite) \(cookie) -H 'Origin: \(s.server)' \(q(s.server))/api/v1/sysfs") == "200")
            #expect(curl("\(apmaskWrite) \(cookie) \(q(s.server))/api/v1/sysfs") == "403")
            #expect(curl("\(apmaskWrite) \(cookie) -H 'Origin: http://evil.example' \(q(s.server))/api/v1/sysfs") == "403")
        }

        /// On a unix socket the kernel names the peer: nobody reads, root writes without a token.
        @Test func onAUnixSocketThePeersCredentialsDecide() throws {
            let base = try makeTempDir()
            chmod(base, 0o755)
            let dir = base + "/sys", socket = base + "/api.sock"
            var p: Spawned?
            defer {
                cleanupServe(p, dir)
                _ = sh("rm -rf \(q(base))")
            }
            p = try Spawned([try apmatrixExecutable(), "serve", "--mount", dir, "--listen", "unix:" + socket])
            #expect(p!.waitForStdoutLine(timeout: 30) { $0 == "ready unix:\(socket)" } != nil, "\(p!.stderrText)")
            let unix = "--unix-socket \(q(socket))"
            #expect(curlAsNobody("\(unix) http://localhost/api/v1/sysfs?path=bus/ap/apmask") == "200")
            let refused = sh("setpriv --reuid=65534 --regid=65534 --clear-groups curl -s \(unix) \(apmaskWrite) http://localhost/api/v1/sysfs")
            #expect(refused.stdout == #"{"error":{"code":13,"errno":"EACCES","message":"uid 65534 may not change the host; only root may, as only root writes sysfs"}}"#,
                    "\(refused)")
            #expect(cat(dir + "/bus/ap/apmask") == allOnesMask)
            #expect(curl("\(unix) \(apmaskWrite) http://localhost/api/v1/sysfs") == "200")
            let cli = sh("\(q(try apmatrixExecutable())) host domain add 100 --server unix:\(q(socket))")
            #expect(cli.status == 0, "\(cli)")
            p!.signal(SIGTERM)
            #expect(p!.reap(timeout: 15) == 0)
        }
    }
}
