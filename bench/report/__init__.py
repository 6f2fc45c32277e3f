"""What people look at besides the leaderboard tables: frame strips (and, later, the HTML
report). The report side reads run folders; it never imports the runner."""
