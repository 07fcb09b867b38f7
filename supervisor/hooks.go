package supervisor

import "github.com/emielm/watchgod/internal/loaderpool"

// hook queues an on<State> notification for job's loader (see loaderpool.Pool.Hook).
func (s *Supervisor) hook(path, job string, args []string) {
	if v, ok := s.pools.Load(path); ok {
		v.(*loaderpool.Pool).Hook(job, args)
	}
}
