import CRecurABI

/// The library's version: the macros of include/recur.h.
public enum RecurVersion {
    public static let major = Int(RECUR_VERSION_MAJOR)
    public static let minor = Int(RECUR_VERSION_MINOR)
    public static let patch = Int(RECUR_VERSION_PATCH)
    public static let string = RECUR_VERSION_STRING
}
