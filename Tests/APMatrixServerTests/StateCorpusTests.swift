import APMatrixRuntime
import APMatrixModel
import APMatrixTesting
import Foundation
import Testing

/// The state files of the fuzzer's seed corpus were written by earlier
/// versions: they still load, and their hosts keep every invariant.
@Suite struct StateCorpusTests {
    @Test(arguments: ["after-firmware.json", "fresh.json", "guest.json"])
    func earlierStateFilesLoad(_ name: String) throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Fuzz/corpus/statefile/" + name)
        let doc = try StateDocument.decode(Array(try Data(contentsOf: url)), profile: .seed, path: name)
        #expect(doc.host.checkInvariants().isEmpty)
    }
}
