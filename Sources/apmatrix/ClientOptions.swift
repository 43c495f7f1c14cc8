import APMatrixModel
import APMatrixServer
import ArgumentParser
import Glibc

/// How a client subcommand finds its host (SPEC §6).
struct ServerOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "The apmatrix daemon's API: http://HOST:PORT or unix:PATH (default: $APMATRIX_SERVER, else http://127.0.0.1:7807).",
        valueName: "URL"))
    var server: String?

    var client: APIClient {
        APIClient(server: server ?? getenv("APMATRIX_SERVER").map { String(cString: $0) } ?? "http://127.0.0.1:7807")
    }
}

/// Reports a refused operation the way the CLI promises: one line on stderr
/// naming the errno, exit status 1.
func reporting<T>(_ body: () async throws(APError) -> T) async throws -> T {
    do throws(APError) { return try await body() } catch {
        throw Failure(error.description)
    }
}
