from specc.cli import main
import sys

sys.exit(main())
