@_cdecl("recur_placeholder") public func placeholder() {}
