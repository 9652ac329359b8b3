"""The book: the experiments its chapters run as cached records (`experiments`, `records`), what each chapter
shows (`studies`, `chapter`), the verdict of every claim (`verdicts`) against the papers' numbers (`paper`), and
the runner that executes the chapters and builds the site (`runner`; `python -m bgrepro.book run|build|check`)."""
