import NMIR

/// NMIR → HLS C++ systolic array arrives with the HLS issue.
public enum HLSTarget {
    public static let isAvailable = false
}
