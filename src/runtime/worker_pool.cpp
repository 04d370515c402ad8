#include "runtime/worker_pool.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mstream::runtime {

Result<std::unique_ptr<WorkerPool>> WorkerPool::start(std::size_t lanes) {
  if (lanes == 0)
    return Status::error(Status::Code::kInvalidArgument, "a worker pool needs a lane");
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0)
    return Status::error(Status::Code::kIoError, std::string("eventfd: ") + std::strerror(errno));
  std::unique_ptr<WorkerPool> pool(new WorkerPool(fd));
  for (std::size_t i = 0; i < lanes; ++i) pool->lanes_.push_back(std::make_unique<Lane>());
  for (auto& lane : pool->lanes_) {
    Lane* l = lane.get();
    WorkerPool* p = pool.get();
    l->thread = std::thread([p, l] { p->serve(*l); });
  }
  return pool;
}

WorkerPool::~WorkerPool() {
  for (auto& lane : lanes_) {
    std::lock_guard lock(lane->mu);
    lane->stop = true;
    lane->cv.notify_one();
  }
  for (auto& lane : lanes_)
    if (lane->thread.joinable()) lane->thread.join();
  ::close(wake_fd_);
}

void WorkerPool::submit(std::size_t lane, std::function<void()> work, std::function<void()> done) {
  Lane& l = *lanes_[lane];
  bool was_empty = false;
  {
    std::lock_guard lock(l.mu);
    was_empty = l.queue.empty();
    l.queue.push_back(Task{std::move(work), std::move(done)});
  }
  // A worker that is busy finds the new task when it looks at its queue again.
  if (was_empty) l.cv.notify_one();
}

void WorkerPool::serve(Lane& lane) {
  std::unique_lock lock(lane.mu);
  for (;;) {
    lane.cv.wait(lock, [&] { return lane.stop || !lane.queue.empty(); });
    // Stopping still runs what was submitted: a site's last tasks free its interpreters on
    // their own threads.
    if (lane.queue.empty()) return;
    Task task = std::move(lane.queue.front());
    lane.queue.pop_front();
    lock.unlock();
    task.work();
    if (task.done) finish(std::move(task.done));
    lock.lock();
  }
}

void WorkerPool::finish(std::function<void()> done) {
  bool was_empty = false;
  {
    std::lock_guard lock(finished_mu_);
    was_empty = finished_.empty();
    finished_.push_back(std::move(done));
    finished_count_.fetch_add(1, std::memory_order_release);
  }
  // One wake-up per batch of finished work: run_done() reads the eventfd before it takes the
  // batch, so work finished after that writes again.
  if (was_empty) {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  }
}

void WorkerPool::run_done() {
  if (!has_done()) return;
  std::uint64_t count = 0;
  [[maybe_unused]] ssize_t n = ::read(wake_fd_, &count, sizeof(count));
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(finished_mu_);
    batch.swap(finished_);
    finished_count_.store(0, std::memory_order_release);
  }
  for (auto& done : batch) done();
}

}  // namespace mstream::runtime
