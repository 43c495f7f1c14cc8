import APMatrixRuntime
import APMatrixModel

// Host files (SPEC §1): an accepted file boots a host that passes every invariant.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let d = try? HostFile.parse(bytes) else { return 0 }
    let host = try? APHost(d)
    precondition(host != nil, "an accepted host file does not boot")
    precondition(host!.checkInvariants().isEmpty)
    return 0
}
