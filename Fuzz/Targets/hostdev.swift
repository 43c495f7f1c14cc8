import APMatrixModel
import APMatrixServer

// `guest attach-device` XML: an accepted document names a canonical mdev UUID.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let uuid = try? HostdevXML.parse(bytes) {
        precondition(KernelParse.mdevUUID(Array(uuid.description.utf8)) == .success(uuid))
    }
    return 0
}
