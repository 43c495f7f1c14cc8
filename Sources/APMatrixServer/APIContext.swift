import Foundation
import Hummingbird
import HummingbirdAuth
import NIOCore

/// The request context of the control API: who is writing (set on the
/// operations that change the host) and the connection, whose peer a
/// unix-socket listener asks for its credentials.
public struct APIContext: AuthRequestContext, RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var identity: Writer?
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    public var responseEncoder: JSONEncoder { APIJSON.encoder }
}

/// Who may change the host: a request that showed the daemon's token, or a
/// unix-socket peer that is root or the daemon's own user.
public enum Writer: Sendable, Equatable {
    case token
    case user(uid_t)
}
