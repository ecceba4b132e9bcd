// A blocking queue with a capacity, for the backup pipeline's threads.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>

namespace warden {

template <typename T>
class BoundedQueue {
public:
    explicit BoundedQueue(std::size_t capacity) : capacity_(capacity) {}

    // Blocks while full; returns false (dropping the item) once the queue is closed.
    bool push(T item)
    {
        std::unique_lock<std::mutex> lock(mu_);
        not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
        if (closed_)
            return false;
        items_.push_back(std::move(item));
        not_empty_.notify_one();
        return true;
    }

    // Blocks while empty; returns false when closed and drained.
    bool pop(T& out)
    {
        std::unique_lock<std::mutex> lock(mu_);
        not_empty_.wait(lock, [&] { return !items_.empty() || closed_ || finished_; });
        if (items_.empty())
            return false;
        out = std::move(items_.front());
        items_.pop_front();
        not_full_.notify_one();
        return true;
    }

    // No more items will come; consumers drain what is left.
    void finish()
    {
        std::lock_guard<std::mutex> lock(mu_);
        finished_ = true;
        not_empty_.notify_all();
    }

    // Give up: producers stop blocking, consumers stop after what is queued.
    void close()
    {
        std::lock_guard<std::mutex> lock(mu_);
        closed_ = true;
        not_full_.notify_all();
        not_empty_.notify_all();
    }

private:
    std::size_t capacity_;
    std::deque<T> items_;
    bool finished_ = false;
    bool closed_ = false;
    std::mutex mu_;
    std::condition_variable not_full_, not_empty_;
};

}  // namespace warden
