package sync

// SetOnTurnWait lets the external tests see Run hold an image back (runner.takeTurn).
func (p *Plan) SetOnTurnWait(f func(*Item)) { p.onTurnWait = f }
