import APMatrixModel
import Glibc
import Hummingbird
import HummingbirdAuth
import NIOCore

/// Who may change the host through the API: the kernel's rule for sysfs,
/// reads open to everyone, writes for root only, applied at the API's edge.
/// The daemon's own user writes too when it is not root (it owns the
/// emulated host). Over TCP a connection has no user, so a write shows the
/// daemon's token instead (`Authorization: Bearer`, or the page's cookie);
/// on a unix socket the kernel names the peer (`SO_PEERCRED`).
public struct WriteAccess: Sendable {
    /// The daemon's secret, 256 random bits in hex.
    public let token: String
    /// The users whose unix-socket connections may write.
    public let users: Set<uid_t>

    public init(token: String = WriteAccess.newToken(), users: Set<uid_t> = [0, geteuid()]) {
        self.token = token
        self.users = users
    }

    public static func newToken() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<32).map { _ in APID(rawValue: UInt8.random(in: 0...255, using: &g)).description }.joined()
    }

    /// The page's cookie for the daemon on `port`: one name per port, since
    /// a browser keeps the cookies of 127.0.0.1 for every port together.
    public static func cookieName(port: Int) -> String { "apmatrix_token_\(port)" }

    /// Compares in constant time, so the time of a refusal does not tell how much of a guess was right.
    func isToken(_ candidate: String) -> Bool {
        let a = Array(candidate.utf8), b = Array(token.utf8)
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    var userList: String { users.sorted().map { $0 == 0 ? "root" : "uid \($0)" }.joined(separator: " and ") }
}

/// Authenticates the operations that change the host, or refuses them:
/// 401 without the token (or with a wrong one), 403 for a unix-socket peer
/// that is not allowed. Reads never pass here.
struct WriterAuthenticator: AuthenticatorMiddleware {
    typealias Context = APIContext
    let access: WriteAccess

    func authenticate(request: Request, context: APIContext) async throws -> Writer? {
        if let bearer = request.headers.bearer {
            guard access.isToken(bearer.token) else { throw refusal(.unauthorized, "the token does not match this daemon's") }
            return .token
        }
        if case .unixDomainSocket? = context.channel.localAddress {
            guard let uid = await peerUID(context.channel) else {
                throw refusal(.forbidden, "the unix-socket peer's credentials cannot be read")
            }
            guard access.users.contains(uid) else {
                throw refusal(.forbidden, "uid \(uid) may not change the host; only \(access.userList) may, as only root writes sysfs")
            }
            return .user(uid)
        }
        if let port = context.channel.localAddress?.port, let cookie = request.cookies[WriteAccess.cookieName(port: port)] {
            // A cookie goes with every request to this host, whoever made the page that sends it: accept it only from the daemon's own page.
            guard let origin = request.headers[.origin], let host = request.head.authority, origin == "http://\(host)" else {
                throw refusal(.forbidden, "the token cookie is accepted only from the daemon's own page (its Origin)")
            }
            guard access.isToken(cookie.value) else { throw refusal(.unauthorized, "the token cookie does not match this daemon's") }
            return .token
        }
        throw refusal(.unauthorized, "a change needs the daemon's token: Authorization: Bearer TOKEN (the CLI finds it in "
                      + "\(TokenFile.directory())/ for a daemon of this user; the page gets it from the URL serve prints)")
    }

    func refusal(_ status: HTTPResponse.Status, _ message: String) -> APIError {
        var headers: HTTPFields = [:]
        if status == .unauthorized { headers[.wwwAuthenticate] = #"Bearer realm="apmatrix""# }
        return APIError(status: status, APError(.permissionDenied, message), headers: headers)
    }

    /// The peer's user, from the kernel (`SO_PEERCRED`).
    func peerUID(_ channel: any Channel) async -> uid_t? {
        guard let provider = channel as? any SocketOptionProvider else { return nil }
        let credentials: PeerCredentials? = try? await provider.unsafeGetSocketOption(
            level: NIOBSDSocket.OptionLevel(rawValue: SOL_SOCKET), name: NIOBSDSocket.Option(rawValue: SO_PEERCRED)).get()
        return credentials?.uid
    }
}

/// Linux's `struct ucred`, which Glibc's module does not export (it needs _GNU_SOURCE).
struct PeerCredentials: Sendable {
    var pid: pid_t
    var uid: uid_t
    var gid: gid_t
}
