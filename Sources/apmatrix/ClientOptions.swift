import APMatrixModel
import APMatrixServer
import ArgumentParser
import Glibc

/// How a client subcommand finds its host (SPEC §6), and the daemon's
/// write token when it is on another machine.
struct ServerOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "The apmatrix daemon's API: http://HOST:PORT or unix:PATH (default: $APMATRIX_SERVER, else http://127.0.0.1:7807).",
        valueName: "URL"))
    var server: String?

    @Option(help: ArgumentHelp(
        "The daemon's write token (default: $APMATRIX_TOKEN, else the token file a daemon of this user on this machine wrote).",
        valueName: "TOKEN"))
    var token: String?

    var client: APIClient {
        APIClient(server: server ?? environment("APMATRIX_SERVER") ?? "http://127.0.0.1:7807",
                  token: token ?? environment("APMATRIX_TOKEN"))
    }

    func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}

/// Reports a refused operation the way the CLI promises: one line on stderr
/// naming the errno, exit status 1.
func reporting<T>(_ body: () async throws(APError) -> T) async throws -> T {
    do throws(APError) { return try await body() } catch {
        throw Failure(error.description)
    }
}
