import NMIR

/// NMIR → PTX for NVIDIA tensor cores arrives with the PTX issue.
public enum PTXTarget {
    public static let isAvailable = false
}
