import APMatrixRuntime
import APMatrixModel
import FoundationEssentials

// State files of `serve --state`: an accepted document holds a host that
// passes every invariant and encodes back to an equal document.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let doc = try? StateDocument.decode(bytes, profile: .seed, path: "fuzz") else { return 0 }
    precondition(doc.host.checkInvariants().isEmpty)
    let again = try! StateDocument.decode(Array(JSONEncoder().encode(doc)), profile: .seed, path: "fuzz")
    precondition(again.host == doc.host && again.log == doc.log)
    return 0
}
