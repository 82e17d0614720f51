import Foundation

/// `path` as given when absolute, else joined to `base` (a scenario's folder, or the working
/// directory for a path given on the command line).
public func resolvedPath(_ path: String, against base: String) -> String {
    path.hasPrefix("/") ? path : base + "/" + path
}

/// `path` as given when absolute, else joined to the working directory.
public func resolvedPathFromWorkingDirectory(_ path: String) -> String {
    resolvedPath(path, against: FileManager.default.currentDirectoryPath)
}
