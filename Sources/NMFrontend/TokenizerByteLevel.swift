/// GPT-2's byte-level alphabet (`bytes_to_unicode` in OpenAI's encoder.py): every byte 0…255
/// gets a printable scalar, so byte strings can be stored as token text. The printable bytes
/// `!`…`~`, `¡`…`¬`, `®`…`ÿ` stand for themselves; the other 68 bytes, in increasing order, get
/// U+0100, U+0101, … (so the space 0x20 is `Ġ` U+0120 and the newline 0x0A is `Ċ` U+010A).
enum BPEByteLevel {
    /// `scalarForByte[b]` is the scalar value that byte `b` is written as.
    static let scalarForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte)
                || (0xAE...0xFF).contains(byte)
            if printable {
                table[byte] = UInt32(byte)
            } else {
                table[byte] = next
                next += 1
            }
        }
        return table
    }()

    /// `byteForScalar[v]` is the byte that scalar value `v` stands for, or -1; values at or past
    /// the end of the table stand for no byte.
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 256 + 68)
        for (byte, scalar) in scalarForByte.enumerated() {
            table[Int(scalar)] = Int16(byte)
        }
        return table
    }()

    /// The byte-level spelling of `bytes`.
    static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var scalars = String.UnicodeScalarView()
        for byte in bytes {
            if let scalar = Unicode.Scalar(scalarForByte[Int(byte)]) {
                scalars.append(scalar)
            }
        }
        return String(scalars)
    }

    /// The bytes a byte-level string stands for, or nil when a scalar is outside the alphabet.
    static func decode(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            let value = Int(scalar.value)
            guard value < byteForScalar.count, byteForScalar[value] >= 0 else { return nil }
            bytes.append(UInt8(byteForScalar[value]))
        }
        return bytes
    }
}
