"""The conversion pipeline: load -> capability -> partition -> shapes -> engines -> rewrite -> save."""
