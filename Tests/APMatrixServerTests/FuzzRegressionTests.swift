import APMatrixModel
import APMatrixServer
import APMatrixTesting
import Foundation
import Testing

/// Inputs scripts/fuzz found (kept in Fuzz/corpus), each once a crash.
@Suite struct FuzzRegressionTests {
    /// A hostdev document whose element and attribute names hold bytes that are
    /// not UTF-8 trapped inside FoundationXML: a remote crash of the daemon
    /// through `POST /guests/{name}/hostdev`.
    @Test func hostdevXMLThatIsNotUTF8IsRefused() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Fuzz/corpus/hostdev/crash-non-utf8-attribute")
        let bytes = Array(try Data(contentsOf: url))
        #expect(bytes.count == 148)
        #expect(throws: APError(.invalidArgument, "hostdev XML is not UTF-8 text")) { try HostdevXML.parse(bytes) }
    }
}
