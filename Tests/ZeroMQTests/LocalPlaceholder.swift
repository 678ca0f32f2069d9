// LOCAL PLACEHOLDER (not committed)
